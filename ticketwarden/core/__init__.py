"""The load-bearing core: model, actions, policy, clocks, engine and the built-in rules."""
