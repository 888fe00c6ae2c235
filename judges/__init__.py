"""Built-in judges. Each module registers its judges with `@judges.register(name)`."""
