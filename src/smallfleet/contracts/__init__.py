"""Contracts: one agent step's specification (instructions, output constraint, validators, ladder, policies)."""
