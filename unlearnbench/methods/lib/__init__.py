"""Helpers several methods share (not methods themselves: the methods are the modules one level up)."""
