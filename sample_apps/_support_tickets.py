"""Support tickets and the customer names to redact from them, shared by the ``regex_*`` samples."""

from __future__ import annotations

from typing import List

#: Customer names to redact: more distinct patterns than the re module's cache holds (512).
_FIRST = ("Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Edsger", "Donald", "Frances", "Radia", "Margaret",
          "Dennis", "Ivan", "Niklaus", "John", "Leslie")  # fmt: skip
_LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Dijkstra", "Knuth", "Allen", "Perlman",
         "Hamilton", "Ritchie", "Kay", "Wirth", "Backus", "Hoare", "Lamport", "Milner", "Naur", "Floyd", "Cerf", "Kahn",
         "Engelbart", "Sutherland", "Bachman", "Codd", "Gray", "Stonebraker", "Hellman", "Diffie", "Rivest", "Shamir",
         "Adleman", "Berners-Lee", "Metcalfe")  # fmt: skip
NAMES: List[str] = [f"{first} {last}" for first in _FIRST for last in _LAST]

#: A day's batch of ticket texts, redacted together in one invocation.
TICKETS: List[str] = [
    f"Ticket {n}: customer Grace Hopper reports that the invoice for order {4400 + n} was sent to Alan Turing "
    f"instead. Please check with Ken Thompson in billing; Barbara Liskov approved a refund of {n * 3} EUR."
    for n in range(10)
]
