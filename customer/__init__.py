"""The customer's side of the conversation: their replies read back into the complaint (inbound.py), and their
own page (page.py), reached by signed links (links.py). Both act through the gateway (gateway.py), as the
principal ``customer:<id>``, by the same workflow updates an operator would send."""
