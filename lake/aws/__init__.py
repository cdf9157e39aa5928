"""The one door to AWS: client factories, error translation, the embedded AWS."""
