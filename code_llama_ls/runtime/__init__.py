"""Loading the model the settings name: the runtime, and the hub it may come from."""
