"""On the Joint Interaction of Models, Data, and Features (Jiang, Baek, Kolter; arXiv 2306.04793): the interaction
tensor, the dominant/rare feature framework and GDE. Written from the paper's description and the spec."""
from interaction_tensor.framework import framework_accuracy, framework_agreement, simulate
from interaction_tensor.gde import cace, disagreement, test_error
from interaction_tensor.tensor import InteractionTensor, interaction_tensor

__all__ = ["InteractionTensor", "cace", "disagreement", "framework_accuracy", "framework_agreement",
           "interaction_tensor", "simulate", "test_error"]
