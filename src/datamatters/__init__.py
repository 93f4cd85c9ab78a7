"""datamatters: trace data quality to the output quality of generative image models."""

__version__ = "0.1.0"
