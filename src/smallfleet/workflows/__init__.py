"""Workflows: agent runs whose steps are contracts, tool calls or model calls, traced as one run."""
