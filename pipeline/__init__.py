"""trialproof's sponsor side and application layer: the home, ingestion, the CLI."""

from pipeline.errors import HomeError, PipelineError, UsageError

__all__ = ["HomeError", "PipelineError", "UsageError"]
