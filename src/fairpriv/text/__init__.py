"""Text transforms for training data: counterfactual data augmentation (CDA, arXiv 2402.04489) in :mod:`.cda`
(gender) and :mod:`.group_swap` (religion and race, term lists in :mod:`.group_terms`)."""
