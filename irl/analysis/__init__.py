"""Analyses of a frozen base model: linear probes, supervised controllers."""
