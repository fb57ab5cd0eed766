#!/usr/bin/env python
"""Convert long-format roll calls (CSV: vote_id, timestamp, deputy, faction, vote) to the npz that
data.path reads (arrays V, F, ts, mps, facs). For the Verkhovna Rada's open-data export, first reshape it
to those five columns; vote strings may be English (yes/no/abstain/did_not_vote/absent) or the Rada's own.

    python scripts/rollcall_csv_to_npz.py votes.csv rada8.npz
"""
import sys

import numpy as np

from sinkhorn_flow.rollcalls import load_rollcall_csv

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    arrays = load_rollcall_csv(sys.argv[1])
    np.savez_compressed(sys.argv[2], **arrays)
    print(f"{sys.argv[2]}: {arrays['V'].shape[0]} roll calls x {arrays['V'].shape[1]} deputies, "
          f"{len(arrays['facs'])} factions")
