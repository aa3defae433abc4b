"""Extensions: components outside the data path."""
