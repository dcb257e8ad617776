"""The deploy step: platform rules, and ``blockimg build`` from one config."""
