"""Stage 1: run a spider in its own process and hand over the batch it landed."""
