"""Hydra configs shared by every project, found through `hydra.searchpath: [pkg://shared.configs]`."""
