"""TKP: first actions at the scene (TPTKP), scene processing (olah TKP), evidence, turjawali, closure."""
