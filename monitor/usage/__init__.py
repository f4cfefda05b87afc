"""GPU usage accounting: who held which GPU, split by memory, idle or busy, with how much energy."""
