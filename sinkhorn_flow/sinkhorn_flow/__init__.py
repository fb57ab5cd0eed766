"""Sinkhorn-Flow (Bhutani & Kolter, arXiv 2303.07675): predict probability-mass flow between communities
with a Sinkhorn layer in place of a softmax.

    from sinkhorn_flow import sinkhorn, SinkhornFlow, drifting_blobs, flows_from_rollcalls
"""
from sinkhorn_flow.data import Transitions, drifting_blobs
from sinkhorn_flow.model import SinkhornFlow
from sinkhorn_flow.rollcalls import flows_from_rollcalls, load_rollcalls
from sinkhorn_flow.sinkhorn import marginal_errors, sinkhorn, softmax_rows

__all__ = ["SinkhornFlow", "Transitions", "drifting_blobs", "flows_from_rollcalls", "load_rollcalls",
           "marginal_errors", "sinkhorn", "softmax_rows"]
