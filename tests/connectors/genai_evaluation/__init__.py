"""Tests of the genai_evaluation connector."""
