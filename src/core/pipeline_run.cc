#include "core/pipeline_run.h"
