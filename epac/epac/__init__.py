"""Learning with explanation constraints (Pukdee, Sam, Kolter, Balcan, Ravikumar; arXiv 2303.14496), in JAX + Flax:
gradient explanations and their surrogate losses, the EPAC learners (supervised, labeled-only penalty, penalty and
augmented Lagrangian on unlabeled data, our reading of the variational method), and the Rademacher complexity of
the angle-constrained linear class."""
from epac.constraints import Explanation, gradient_penalty, input_gradients
from epac.data import Task, load_wrench, make_synthetic
from epac.learners import METHODS, train
from epac.models import MLP, Linear, make_model
from epac.rademacher import rademacher_linear_cone

__all__ = ["METHODS", "MLP", "Explanation", "Linear", "Task", "gradient_penalty", "input_gradients", "load_wrench",
           "make_model", "make_synthetic", "rademacher_linear_cone", "train"]
