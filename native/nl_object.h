// Old name of rtnl/holders.h, kept only so that branches written against it still build after the
// merge; new code includes "rtnl/holders.h".
#pragma once
#include "rtnl/holders.h"
