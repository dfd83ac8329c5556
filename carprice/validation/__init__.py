"""Data validation: a contract for listings, profiles of batches, and the checks that block bad ones."""
