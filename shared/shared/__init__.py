"""papers-repro common package: run logging (``shared.logging``), devices and seeding (``shared.device``),
results tables against the paper's numbers (``shared.results``). Nothing paper-specific lives here."""
from shared.device import autocast_dtype, cuda_memory_summary, get_device, limit_threads, on_slurm, seed_everything
from shared.logging import Run, read_metrics_jsonl, start_run
from shared.results import PaperYamlError, load_paper_yaml, summarize

__all__ = ["Run", "PaperYamlError", "autocast_dtype", "cuda_memory_summary", "get_device", "limit_threads",
           "load_paper_yaml", "on_slurm", "read_metrics_jsonl", "seed_everything", "start_run", "summarize"]
