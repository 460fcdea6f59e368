"""Dispatch: the live unit board, recommendations and assignments."""
