// Old name of rtnl/dump.h, kept only so that branches written against it still build after the
// merge; new code includes "rtnl/dump.h".
#pragma once
#include "rtnl/dump.h"
