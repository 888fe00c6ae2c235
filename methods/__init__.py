"""Built-in methods. Each module registers its methods with `@methods.register(name)`."""
