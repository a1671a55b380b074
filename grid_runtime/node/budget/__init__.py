"""Privacy budgets: the ledger of privacy events, the Rényi filter over it, release and budget requests."""
