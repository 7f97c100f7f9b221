int ModelcacheAgentAnchor() { return 0; }
