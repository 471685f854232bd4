"""Experiments: plan (grid expansion, run ids), store, executors, runner."""
