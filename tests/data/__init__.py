"""Test data: recorded and generated fixtures, with the scripts that make them."""
