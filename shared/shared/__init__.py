"""papers-repro common package: run logging (``shared.logging``), devices and seeding (``shared.device``),
results tables against the paper's numbers (``shared.results``). Nothing paper-specific lives here."""
from shared.device import autocast_dtype, cuda_memory_summary, get_device, limit_threads, on_slurm, seed_everything
from shared.logging import Run, read_metrics_jsonl, start_run

__all__ = ["Run", "PaperYamlError", "autocast_dtype", "cuda_memory_summary", "get_device", "limit_threads",
           "load_paper_yaml", "on_slurm", "read_metrics_jsonl", "seed_everything", "start_run", "summarize"]


def __getattr__(name):
    # shared.results is imported lazily so that `python -m shared.results` does not import it twice.
    if name in ("PaperYamlError", "load_paper_yaml", "summarize"):
        from shared import results

        return getattr(results, name)
    raise AttributeError(f"module 'shared' has no attribute {name!r}")
