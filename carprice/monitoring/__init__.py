"""Stage 6: drift and quality of each admitted batch against the serving model, retraining requests, alerts."""
