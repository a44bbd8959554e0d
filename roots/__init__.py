"""roots: a builder for multilingual LLM pretraining corpora with provenance, after BigScience ROOTS."""

__version__ = "0.1.0"
