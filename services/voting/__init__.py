"""The ``voting`` service: public online voting (網絡投票), its rules as plugins, and the voting page."""
