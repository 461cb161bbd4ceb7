"""Evaluations on real labelled data and on synthetic truth."""
