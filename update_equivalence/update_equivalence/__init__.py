"""The update-equivalence framework for decision-time planning (Sokota et al.; arXiv 2304.13138): the (magnetic)
mirror-descent update, exact search in small games and its equivalence to one global learner iterate, the
common-payoff soundness study, and the sampled planner for Phantom Tic-Tac-Toe and Abrupt Dark Hex."""
from update_equivalence.exact import (
    MMDLearner,
    cfr_policy,
    exact_search_policy,
    expected_return,
    exploitability,
    load_game,
    uniform_policy,
)
from update_equivalence.sampled import SampledPlanner, head_to_head, sample_histories
from update_equivalence.update import update

__all__ = ["MMDLearner", "SampledPlanner", "cfr_policy", "exact_search_policy", "expected_return", "exploitability",
           "head_to_head", "load_game", "sample_histories", "uniform_policy", "update"]
