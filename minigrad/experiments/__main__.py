"""python -m minigrad.experiments NAME ...: the same as minigrad experiment NAME ..."""
from minigrad.experiments import main

raise SystemExit(main())
