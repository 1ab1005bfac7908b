-- Offers the "refresh" action on every ExternalSecret.
local actions = {}
actions["refresh"] = {["disabled"] = false}
return actions
