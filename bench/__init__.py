"""Benchmarks of glurpc-lab's speed and memory; ``python bench/run.py`` runs them all."""
