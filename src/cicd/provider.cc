#include "cicd/provider.h"
