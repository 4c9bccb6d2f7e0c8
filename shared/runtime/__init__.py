"""What every service main shares: flags, names, signals, gc settling, liveness, status publishing."""
