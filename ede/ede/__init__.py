"""Exploration via Distributional Ensemble (Jiang, Kolter, Raileanu; arXiv 2306.05483): the tabular CMDP study,
EDE's distributional-ensemble core and its agent. (Procgen/Crafter training: in progress.)"""
from ede.agent import EDEAgent, Replay
from ede.core import (
                      aleatoric_uncertainty,
                      epistemic_uncertainty,
                      mean_q,
                      quantile_huber_loss,
                      tau_hat,
                      tee_coefficients,
                      thompson_action,
                      ucb_action,
)
from ede.networks import EDENetwork, ImpalaCNN, NatureCNN
from ede.tabular import TabularCMDP, run_policy_gradient, run_q_learning

__all__ = ["EDEAgent", "EDENetwork", "ImpalaCNN", "NatureCNN", "Replay", "TabularCMDP", "aleatoric_uncertainty",
           "epistemic_uncertainty", "mean_q", "quantile_huber_loss", "run_policy_gradient", "run_q_learning",
           "tau_hat", "tee_coefficients", "thompson_action", "ucb_action"]
