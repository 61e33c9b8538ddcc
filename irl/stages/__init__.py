"""Stages of the pipeline as library functions: each trains or evaluates, then writes its
artefacts (JSON, PNG) to a workdir. The CLIs in experiments/ only parse flags and call them."""
