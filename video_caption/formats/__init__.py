"""Formats shared by the stages and the tools: train.json, caption cleaning."""
