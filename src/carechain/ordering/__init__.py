"""Ordering backends behind one interface (``base.OrderingService``)."""
