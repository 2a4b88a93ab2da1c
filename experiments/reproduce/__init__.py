"""UFLDL's published results reproduced: one script per exercise, and the table of all."""
