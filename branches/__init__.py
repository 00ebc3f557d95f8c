"""The branch network: leads, nearest-branch routing, claim -> verify deadlines and scorecards."""
