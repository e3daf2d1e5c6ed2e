"""HTTP routes, one router per resource. Routes parse, call one service function and respond."""
