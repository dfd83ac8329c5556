"""The simulated used-car marketplace: a seeded, evolving market served as a website on 127.0.0.1."""
