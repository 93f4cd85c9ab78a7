"""From data-quality knobs to output quality: experiment sets, their report and their lineage."""
