"""Built-in tasks. Each module registers its trade-offs with `@tasks.register(name)`."""
